//! Elastic connectors compatibility: `tributary connectors-service --config config.yml` does
//! the job of Elastic's Python connectors service for the connectors it lists — the plugins run
//! the sync jobs that Kibana and the `_connector` APIs create in Elasticsearch.
//!
//! Each round (every `service.idling` seconds): heartbeat the connectors (`last_seen`, every
//! `service.heartbeat`), fail jobs nobody has heartbeated for 5 minutes (every
//! `service.job_cleanup_interval`), then claim and start pending jobs while slots are free
//! (`max_concurrent_content_syncs`, `max_concurrent_access_control_syncs`).
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

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use serde_json::{Map, Value, json};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use crate::config::ConnectorSpec;
use crate::job::JobStatus;
use crate::job::{Counters, SyncKind};
use crate::kv::{ConnectorState, Namespace};
use crate::sink::elasticsearch::ElasticsearchSink;
use crate::{Host, SyncOptions};
use config::{ConnectorEntry, ServiceConfig};
use protocol::{
    CONNECTORS_INDEX, IDLE_JOB_ERROR, IDLE_JOB_SECS, JOBS_INDEX, Protocol, Updated, Versioned,
    iso_now, parse_iso,
};

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
    config: ServiceConfig,
    protocol: Protocol,
    hostname: String,
    content_slots: Arc<Semaphore>,
    acl_slots: Arc<Semaphore>,
    running: Arc<Mutex<HashMap<String, Running>>>,
    last_heartbeat: Mutex<Option<Instant>>,
    last_cleanup: Mutex<Option<Instant>>,
}

impl ConnectorsService {
    /// A service for `config` on `host` (whose sink is not used: each job gets a sink with its
    /// connector's credentials).
    pub fn new(host: Arc<Host>, config: ServiceConfig, hostname: &str) -> anyhow::Result<Self> {
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

    /// Marks jobs of our connectors that nobody heartbeated for 5 minutes as failed.
    async fn fail_idle_jobs(&self, ids: &[String]) -> anyhow::Result<()> {
        let now = crate::util::unix_now();
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

struct Claimed {
    job_id: String,
    entry: ConnectorEntry,
    connector: Versioned,
    plan: protocol::JobPlan,
    service_type: String,
}

struct JobRunner {
    host: Arc<Host>,
    protocol: Protocol,
    sink_config: crate::sink::elasticsearch::ElasticsearchConfig,
    check_every: Duration,
    claimed: Claimed,
    cancel: Arc<AtomicBool>,
    stop: Arc<AtomicU8>,
}

impl JobRunner {
    fn storage(&self) -> ConnectorState {
        ConnectorState::new(
            self.host.db().clone(),
            Namespace {
                tenant: "default".into(),
                connector: self.claimed.plan.connector_id.clone(),
            },
            self.host.config().storage.clone(),
        )
    }

    /// The plugin's stored state as a `sync_cursor` value.
    async fn export_state(&self) -> anyhow::Result<Value> {
        let storage = self.storage();
        let mut state = Map::new();
        for key in storage
            .list_keys(String::new())
            .await
            .map_err(|e| anyhow!("reading plugin state: {e:?}"))?
        {
            if let Some(bytes) = storage
                .get(key.clone())
                .await
                .map_err(|e| anyhow!("reading plugin state: {e:?}"))?
            {
                let value = match String::from_utf8(bytes) {
                    Ok(text) => json!({"text": text}),
                    Err(e) => json!({"hex": hex::encode(e.into_bytes())}),
                };
                state.insert(key, value);
            }
        }
        Ok(json!({"tributary_state": state}))
    }

    /// Replaces the plugin's local state with the connector's `sync_cursor`, when it holds one
    /// tributary wrote (another host may have run the previous sync).
    async fn import_state(&self, cursor: &Value) -> anyhow::Result<()> {
        let Some(Value::Object(state)) = cursor.get("tributary_state") else {
            return Ok(());
        };
        let storage = self.storage();
        let mut writes: Vec<(String, Option<Vec<u8>>)> = storage
            .list_keys(String::new())
            .await
            .map_err(|e| anyhow!("reading plugin state: {e:?}"))?
            .into_iter()
            .filter(|k| !state.contains_key(k))
            .map(|k| (k, None))
            .collect();
        for (key, value) in state {
            let bytes = match (
                value.get("text").and_then(Value::as_str),
                value.get("hex").and_then(Value::as_str),
            ) {
                (Some(text), _) => text.as_bytes().to_vec(),
                (None, Some(h)) => {
                    hex::decode(h).map_err(|e| anyhow!("sync_cursor `{key}`: {e}"))?
                }
                _ => continue,
            };
            writes.push((key.clone(), Some(bytes)));
        }
        storage
            .apply(writes)
            .await
            .map_err(|e| anyhow!("restoring plugin state: {e:?}"))
    }

    fn spec(&self) -> anyhow::Result<ConnectorSpec> {
        let plan = &self.claimed.plan;
        let plugin = self.host.plugin(&self.claimed.service_type)?;
        let mut config = Map::new();
        for (key, value) in &plan.config {
            if plugin.manifest.config.iter().any(|f| &f.key == key) {
                config.insert(key.clone(), value.clone());
            } else {
                tracing::warn!(connector = %plan.connector_id, "configuration `{key}` is not a setting of plugin {}; ignored", plugin.label());
            }
        }
        Ok(ConnectorSpec {
            id: plan.connector_id.clone(),
            plugin: self.claimed.service_type.clone(),
            tenant: "default".into(),
            index: Some(plan.index_name.clone()),
            config,
            rules: plan.rules.clone(),
            advanced_rules: plan.advanced_rules.clone(),
            schedule: Default::default(),
        })
    }

    async fn run(self) -> JobOutcome {
        let job_id = self.claimed.job_id.clone();
        let kind = self.claimed.plan.kind;
        let prepared = async {
            let sink = Arc::new(ElasticsearchSink::new(&self.sink_config)?);
            if kind == SyncKind::Incremental
                && let Some(cursor) = self.claimed.connector.source.get("sync_cursor")
            {
                self.import_state(cursor).await?;
            }
            anyhow::Ok((sink, self.spec()?))
        }
        .await;
        let (sink, spec) = match prepared {
            Ok(p) => p,
            Err(e) => {
                let message = format!("{e:#}");
                return self.finish("error", Some(message), None, None, None).await;
            }
        };
        let counters: Arc<std::sync::Mutex<Option<Arc<Counters>>>> = Arc::default();
        let seen = counters.clone();
        let options = SyncOptions {
            cancel: self.cancel.clone(),
            on_start: Some(Arc::new(move |c: Arc<Counters>| {
                if let Ok(mut slot) = seen.lock() {
                    *slot = Some(c);
                }
            })),
            sink: Some(sink.clone()),
            ..SyncOptions::default()
        };
        let done = Arc::new(tokio::sync::Notify::new());
        let watcher = self.watch(counters.clone(), sink.clone(), done.clone());
        let report = self.host.sync_spec(&spec, kind, options).await;
        // Stop the watcher between two writes, so no late heartbeat overwrites the final counts.
        done.notify_one();
        if let Err(e) = watcher.await {
            tracing::warn!(job = %job_id, "job watcher failed: {e}");
        }
        let stop = self.stop.load(Ordering::SeqCst);
        let (status, error) = match (&report, stop) {
            (_, STOP_GONE) => {
                tracing::warn!(job = %job_id, "the job document changed hands or vanished; not reporting");
                // A vanished job would leave its connector `in_progress` for good (Elastic's
                // `sync_done` with no job says the same).
                if matches!(self.protocol.get(JOBS_INDEX, &job_id).await, Ok(None))
                    && let Err(e) = connector_done(
                        &self.protocol,
                        &self.claimed.plan.connector_id,
                        kind,
                        "error",
                        Some("Couldn't find the job"),
                        None,
                        None,
                    )
                    .await
                {
                    tracing::error!(job = %job_id, "updating the connector failed: {e:#}");
                }
                return JobOutcome {
                    job_id,
                    status: None,
                    error: None,
                };
            }
            (_, STOP_CANCELED) => ("canceled", None),
            (_, STOP_SUSPEND) => ("suspended", None),
            (Ok(r), _) if r.status == JobStatus::Succeeded => ("completed", None),
            (Ok(r), _) => (
                "error",
                Some(
                    r.error
                        .as_ref()
                        .map(|e| e.to_string())
                        .unwrap_or_else(|| "unknown error".into()),
                ),
            ),
            (Err(e), _) => ("error", Some(format!("{e:#}"))),
        };
        let counts = report.as_ref().ok().map(|r| {
            let indexed = if kind == SyncKind::AccessControl {
                r.counts.access_control
            } else {
                r.counts.indexed
            };
            (indexed, r.counts.deleted)
        });
        let cursor = if status == "completed" && kind != SyncKind::AccessControl {
            match self.export_state().await {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(job = %job_id, "sync_cursor not saved: {e:#}");
                    None
                }
            }
        } else {
            None
        };
        self.finish(status, error, counts, cursor, Some(&sink))
            .await
    }

    /// Re-reads the job while it runs: cancel requests stop it; otherwise heartbeat + counts.
    fn watch(
        &self,
        counters: Arc<std::sync::Mutex<Option<Arc<Counters>>>>,
        sink: Arc<ElasticsearchSink>,
        done: Arc<tokio::sync::Notify>,
    ) -> JoinHandle<()> {
        let protocol = self.protocol.clone();
        let job_id = self.claimed.job_id.clone();
        let cancel = self.cancel.clone();
        let stop = self.stop.clone();
        let every = self.check_every;
        let kind = self.claimed.plan.kind;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = done.notified() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                let job = match protocol.get(JOBS_INDEX, &job_id).await {
                    Ok(j) => j,
                    Err(e) => {
                        tracing::warn!(job = %job_id, "checking the job failed; will retry: {e:#}");
                        continue;
                    }
                };
                let reason = match job.as_ref().and_then(|j| j.str("status")) {
                    Some("in_progress") => STOP_NONE,
                    Some("canceling") => STOP_CANCELED,
                    _ => STOP_GONE,
                };
                if reason != STOP_NONE {
                    tracing::info!(job = %job_id, "stopping the job ({})", if reason == STOP_CANCELED { "cancel requested" } else { "no longer ours" });
                    let _ = stop.compare_exchange(
                        STOP_NONE,
                        reason,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    );
                    cancel.store(true, Ordering::SeqCst);
                    return;
                }
                let snapshot = counters
                    .lock()
                    .ok()
                    .and_then(|c| c.as_ref().map(|c| c.snapshot()));
                let mut doc = json!({"last_seen": iso_now()});
                if let Some(s) = snapshot {
                    let indexed = if kind == SyncKind::AccessControl {
                        s.access_control
                    } else {
                        s.indexed
                    };
                    doc["indexed_document_count"] = json!(indexed);
                    doc["deleted_document_count"] = json!(s.deleted);
                    doc["indexed_document_volume"] = json!(mib(&sink));
                }
                if let Err(e) = protocol.update(JOBS_INDEX, &job_id, doc, None).await {
                    tracing::warn!(job = %job_id, "heartbeat failed; will retry: {e:#}");
                }
            }
        })
    }

    async fn finish(
        &self,
        status: &str,
        error: Option<String>,
        counts: Option<(u64, u64)>,
        cursor: Option<Value>,
        sink: Option<&ElasticsearchSink>,
    ) -> JobOutcome {
        let job_id = self.claimed.job_id.clone();
        let kind = self.claimed.plan.kind;
        let now = iso_now();
        let mut doc = json!({"last_seen": now, "status": status, "error": error});
        if matches!(status, "completed" | "error" | "canceled") {
            doc["completed_at"] = json!(now);
        }
        if status == "canceled" {
            doc["canceled_at"] = json!(now);
        }
        let (indexed, deleted) = counts.unwrap_or((0, 0));
        doc["indexed_document_count"] = json!(indexed);
        doc["deleted_document_count"] = json!(deleted);
        if let Some(sink) = sink {
            doc["indexed_document_volume"] = json!(mib(sink));
        }
        let index = if kind == SyncKind::AccessControl {
            format!("{}{}", protocol::ACL_PREFIX, self.claimed.plan.index_name)
        } else {
            self.claimed.plan.index_name.clone()
        };
        match self.protocol.count(&index).await {
            Ok(n) => doc["total_document_count"] = json!(n),
            Err(e) => tracing::warn!(job = %job_id, "counting documents: {e:#}"),
        }
        let mut written = true;
        if let Err(e) = self.protocol.update(JOBS_INDEX, &job_id, doc, None).await {
            tracing::error!(job = %job_id, "writing the job's result failed: {e:#}");
            written = false;
        }
        if let Err(e) = connector_done(
            &self.protocol,
            &self.claimed.plan.connector_id,
            kind,
            status,
            error.as_deref(),
            counts,
            cursor,
        )
        .await
        {
            tracing::error!(job = %job_id, "updating the connector failed: {e:#}");
        }
        tracing::info!(job = %job_id, %status, "sync job finished");
        JobOutcome {
            job_id,
            status: written.then(|| status.to_string()),
            error,
        }
    }
}

fn mib(sink: &ElasticsearchSink) -> u64 {
    let bytes = sink.stats().indexed_bytes.load(Ordering::Relaxed);
    (bytes as f64 / (1024.0 * 1024.0)).round() as u64
}
