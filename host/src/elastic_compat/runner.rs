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
    /// Warnings about the job's configuration (clamped migrated values), for the job document.
    pub(super) warnings: std::sync::Mutex<Vec<String>>,
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

    /// The plugin's sync cursors as a `sync_cursor` value: only the keys [`is_cursor_key`]
    /// allows, each at most [`MAX_CURSOR_VALUE`] bytes and all together at most
    /// [`MAX_CURSOR_TOTAL`]. Tokens, secrets and per-item maps never leave the host's storage.
    async fn export_state(&self) -> anyhow::Result<Value> {
        let storage = self.storage();
        let plugin = self.claimed.service_type.as_str();
        let mut state = Map::new();
        let mut total = 0usize;
        for key in storage
            .list_keys(String::new())
            .await
            .map_err(|e| anyhow!("reading plugin state: {e:?}"))?
        {
            if !is_cursor_key(plugin, &key) {
                continue;
            }
            let Some(bytes) = storage
                .get(key.clone())
                .await
                .map_err(|e| anyhow!("reading plugin state: {e:?}"))?
            else {
                continue;
            };
            if bytes.len() > MAX_CURSOR_VALUE || total + bytes.len() > MAX_CURSOR_TOTAL {
                tracing::warn!(
                    connector = %self.claimed.plan.connector_id,
                    "cursor `{key}` ({} bytes) is too large for `sync_cursor`; it stays in this host's storage only",
                    bytes.len()
                );
                continue;
            }
            total += bytes.len();
            let value = match String::from_utf8(bytes) {
                Ok(text) => json!({"text": text}),
                Err(e) => json!({"hex": hex::encode(e.into_bytes())}),
            };
            state.insert(key, value);
        }
        Ok(json!({"tributary_state": state}))
    }

    /// Restores the plugin's cursors from the connector's `sync_cursor`, when it holds some
    /// tributary wrote (another host may have run the previous sync). Only cursor keys are
    /// written, so a token rotated since the cursor was saved (an access-control job, a failed
    /// job) is never overwritten by an older one; nothing else is deleted.
    async fn import_state(&self, cursor: &Value) -> anyhow::Result<()> {
        let Some(Value::Object(state)) = cursor.get("tributary_state") else {
            return Ok(());
        };
        let plugin = self.claimed.service_type.as_str();
        let storage = self.storage();
        // Dropbox's and Box's cursors go with per-item maps that stay local: on a host without
        // them, the plugin starts over (a listing) rather than applying changes to nothing.
        let has_maps = storage
            .list_keys(String::new())
            .await
            .map_err(|e| anyhow!("reading plugin state: {e:?}"))?
            .iter()
            .any(|k| !is_cursor_key(plugin, k));
        let mut writes: Vec<(String, Option<Vec<u8>>)> = Vec::new();
        for (key, value) in state {
            if !is_cursor_key(plugin, key) {
                tracing::warn!(
                    connector = %self.claimed.plan.connector_id,
                    "`sync_cursor` key `{key}` is not a cursor of plugin {plugin}; not restored"
                );
                continue;
            }
            if !has_maps && keeps_maps(plugin) {
                tracing::info!(
                    connector = %self.claimed.plan.connector_id,
                    "no local state of plugin {plugin}: cursor `{key}` not restored, the plugin lists everything"
                );
                continue;
            }
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
        if writes.is_empty() {
            return Ok(());
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
        // Elastic accepted numbers our schema refuses (`retry_count` 20, `concurrent_downloads`
        // 2000): a migrated connector runs with the nearest allowed value and a warning.
        for warning in
            crate::connector::schema::clamp_migrated(&plugin.manifest.config, &mut config)
        {
            tracing::warn!(connector = %plan.connector_id, "{warning}");
            if let Ok(mut w) = self.warnings.lock() {
                w.push(warning);
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
        let warnings = self.warnings.lock().map(|w| w.clone()).unwrap_or_default();
        if !warnings.is_empty() {
            doc["metadata"] = json!({"tributary_warnings": warnings});
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

/// Largest single cursor value copied into `sync_cursor`.
const MAX_CURSOR_VALUE: usize = 16 * 1024;
/// Largest total of cursor values in one `sync_cursor`.
const MAX_CURSOR_TOTAL: usize = 64 * 1024;

/// The storage keys of built-in plugins that hold sync cursors (positions, not secrets and not
/// per-item maps). Any plugin may also name a key `cursor` or start it with `cursor/`.
const CURSOR_KEYS: &[(&str, &[&str])] = &[
    // `sync`: mode, configuration fingerprint and the `list_folder` cursor.
    ("dropbox", &["sync"]),
    // `positions`: event stream position per crawled user; `positions_at`: when each was last
    // current (Box keeps events for 21 days); `scope`: what they belong to.
    ("box", &["positions", "positions_at", "scope"]),
];

/// Whether plugin `plugin` keeps per-item maps next to its cursors (the built-in ones).
fn keeps_maps(plugin: &str) -> bool {
    CURSOR_KEYS.iter().any(|(p, _)| *p == plugin)
}

/// Whether storage key `key` of plugin `plugin` is a cursor that may travel in `sync_cursor`.
/// Everything else (OAuth tokens such as Box's `oauth`, path and node maps, seen events) stays
/// in the host's storage.
fn is_cursor_key(plugin: &str, key: &str) -> bool {
    key == "cursor"
        || key.starts_with("cursor/")
        || CURSOR_KEYS
            .iter()
            .any(|(p, keys)| *p == plugin && keys.contains(&key))
}

fn mib(sink: &ElasticsearchSink) -> u64 {
    let bytes = sink.stats().indexed_bytes.load(Ordering::Relaxed);
    (bytes as f64 / (1024.0 * 1024.0)).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_cursors_may_leave_the_host() {
        for (plugin, key) in [
            ("dropbox", "sync"),
            ("box", "positions"),
            ("box", "positions_at"),
            ("box", "scope"),
            ("feed", "cursor"),
            ("anything", "cursor/events"),
        ] {
            assert!(is_cursor_key(plugin, key), "{plugin} {key}");
        }
        for (plugin, key) in [
            // Box's rotated OAuth token, node and child maps, seen events.
            ("box", "oauth"),
            ("box", "n/123"),
            ("box", "c/0/123"),
            ("box", "events/seen"),
            // Dropbox's path map, received files, advanced-rule results.
            ("dropbox", "p:/a/b"),
            ("dropbox", "r:id:1"),
            ("dropbox", "a:q"),
            // Another plugin's cursor names are not borrowed.
            ("feed", "sync"),
            ("testbed", "token"),
            ("x", "cursors"),
        ] {
            assert!(!is_cursor_key(plugin, key), "{plugin} {key}");
        }
        assert!(keeps_maps("box") && keeps_maps("dropbox") && !keeps_maps("feed"));
    }
}
