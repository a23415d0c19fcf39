//! One claimed job, run to its end: the connector's snapshot becomes a spec (settings, rules,
//! index), the plugin's stored state is restored from `sync_cursor`, the sync runs while a
//! watcher heartbeats and honours cancel requests, and the job and connector documents get the
//! outcome, counts and (after a successful content sync) the new cursor.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use anyhow::anyhow;
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;

use super::config::ConnectorEntry;
use super::protocol::{self, JOBS_INDEX, Protocol, Versioned, iso_now};
use super::{JobOutcome, STOP_CANCELED, STOP_GONE, STOP_NONE, STOP_SUSPEND, connector_done};
use crate::connector::ConnectorSpec;
use crate::job::Counters;
use crate::job::JobStatus;
use crate::job::SyncKind;
use crate::kv::{ConnectorState, Namespace};
use crate::sink::elasticsearch::ElasticsearchSink;
use crate::{Host, SyncOptions};

pub(super) struct Claimed {
    pub(super) job_id: String,
    pub(super) entry: ConnectorEntry,
    pub(super) connector: Versioned,
    pub(super) plan: protocol::JobPlan,
    pub(super) service_type: String,
}

pub(super) struct JobRunner {
    pub(super) host: Arc<Host>,
    pub(super) protocol: Protocol,
    pub(super) sink_config: crate::sink::elasticsearch::ElasticsearchConfig,
    pub(super) check_every: Duration,
    pub(super) claimed: Claimed,
    pub(super) cancel: Arc<AtomicBool>,
    pub(super) stop: Arc<AtomicU8>,
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

    pub(super) async fn run(self) -> JobOutcome {
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
