//! Scheduled jobs in Elastic-compatible mode: the jobs that each connector's `scheduling` makes
//! due, created the way Elastic's `JobSchedulingService` creates them.
//!
//! Invariants:
//! - A job is created only for a due time inside this host's wake-up window (previous round,
//!   this round], so a time is never scheduled twice by one host and a host that was down does
//!   not replay the runs it missed (Elastic's behaviour).
//! - At most one host creates the job for a due time: the connector's
//!   `last_sync_scheduled_at` (`last_incremental_sync_scheduled_at`,
//!   `last_access_control_sync_scheduled_at`) is written first with `if_seq_no` /
//!   `if_primary_term`; the loser of that write, or a host that finds it already inside its
//!   window, creates nothing.
//! - One scheduled job per connector and kind at a time: while a job of that kind is pending,
//!   suspended, running or canceling, no other is created (Elastic would pile them up).
//! - A connector's bad interval is logged and skipped; it never fails the round for the others.
//!
//! Which kinds are considered (as Elastic): `scheduling.<kind>.enabled` and a Quartz `interval`
//! (`sec min hour dom month dow [year]`, [`Cron::parse_quartz`]); incremental only when the
//! connector's `features.incremental_sync.enabled`; access control only when its configuration
//! turns `use_document_level_security` on. Connectors still `created` or
//! `needs_configuration`, or `deleted`, get nothing.

use serde_json::{Value, json};

use super::protocol::{CONNECTORS_INDEX, JOBS_INDEX, Protocol, Updated, Versioned, iso};
use crate::connector::cron::Cron;
use crate::job::SyncKind;

/// The connector field holding the last scheduled time of `kind`.
pub fn scheduled_at_field(kind: SyncKind) -> &'static str {
    match kind {
        SyncKind::Full => "last_sync_scheduled_at",
        SyncKind::Incremental => "last_incremental_sync_scheduled_at",
        SyncKind::AccessControl => "last_access_control_sync_scheduled_at",
    }
}

fn job_type(kind: SyncKind) -> &'static str {
    match kind {
        SyncKind::Full => "full",
        SyncKind::Incremental => "incremental",
        SyncKind::AccessControl => "access_control",
    }
}

/// A job this round created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scheduled {
    /// The connector.
    pub connector_id: String,
    /// The kind of job.
    pub kind: SyncKind,
    /// The job document's id.
    pub job_id: String,
    /// The due time it was created for (Unix seconds).
    pub due: i64,
}

/// Why a kind is not considered for a connector, if it is not.
fn not_considered(connector: &Value, kind: SyncKind) -> Option<&'static str> {
    let flag = |path: &str| connector.pointer(path).and_then(Value::as_bool) == Some(true);
    match kind {
        SyncKind::Full => None,
        SyncKind::Incremental if !flag("/features/incremental_sync/enabled") => {
            Some("the connector's features do not enable incremental syncs")
        }
        SyncKind::AccessControl => {
            let dls = connector.pointer("/configuration/use_document_level_security/value");
            let on = match dls {
                Some(Value::Bool(b)) => *b,
                Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
                _ => false,
            };
            (!on).then_some("document-level security is off")
        }
        SyncKind::Incremental => None,
    }
}

/// The interval of `kind` when it is enabled.
fn interval(connector: &Value, kind: SyncKind) -> Option<&str> {
    let scheduling = connector.pointer(&format!("/scheduling/{}", job_type(kind)))?;
    if scheduling.get("enabled").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    scheduling.get("interval").and_then(Value::as_str)
}

/// The pending job document for `connector`, as Elastic's `SyncJobIndex.create` writes it: a
/// snapshot of the connector's configuration, active filtering, index and pipeline.
pub fn job_document(connector_id: &str, connector: &Value, kind: SyncKind, now: &str) -> Value {
    let index = connector
        .get("index_name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let index_name = if kind == SyncKind::AccessControl {
        format!("{}{index}", super::protocol::ACL_PREFIX)
    } else {
        index.to_string()
    };
    let filtering = connector
        .get("filtering")
        .and_then(Value::as_array)
        .and_then(|domains| {
            domains
                .iter()
                .find(|d| d.get("domain").and_then(Value::as_str) == Some("DEFAULT"))
                .or_else(|| domains.first())
        })
        .and_then(|d| d.get("active"))
        .cloned()
        .unwrap_or_else(|| json!({"advanced_snippet": {}, "rules": []}));
    json!({
        "connector": {
            "id": connector_id,
            "filtering": filtering,
            "index_name": index_name,
            "language": connector.get("language").cloned().unwrap_or(Value::Null),
            "pipeline": connector.get("pipeline").cloned().unwrap_or(Value::Null),
            "service_type": connector.get("service_type").cloned().unwrap_or(Value::Null),
            "configuration": connector.get("configuration").cloned().unwrap_or(json!({})),
        },
        "trigger_method": "scheduled",
        "job_type": job_type(kind),
        "status": "pending",
        "indexed_document_count": 0,
        "indexed_document_volume": 0,
        "deleted_document_count": 0,
        "created_at": now,
        "last_seen": now,
    })
}

/// One scheduling round over `connectors` for the window `(last_wake_up, now]` (Unix
/// seconds): creates the jobs that came due, returns them.
pub async fn schedule_due(
    protocol: &Protocol,
    connectors: &[String],
    last_wake_up: i64,
    now: i64,
) -> anyhow::Result<Vec<Scheduled>> {
    let mut created = Vec::new();
    let active = protocol.open_jobs(connectors).await?;
    for id in connectors {
        // Elastic's order: access control, incremental, full.
        for kind in [
            SyncKind::AccessControl,
            SyncKind::Incremental,
            SyncKind::Full,
        ] {
            let busy = active.iter().any(|job| {
                job.str("connector.id") == Some(id.as_str())
                    && job.str("job_type") == Some(job_type(kind))
            });
            if busy {
                tracing::debug!(connector = %id, %kind, "a job of this kind is still open; not scheduling another");
                continue;
            }
            match schedule_one(protocol, id, kind, last_wake_up, now).await {
                Ok(Some(job)) => created.push(job),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(connector = %id, %kind, "scheduling skipped: {e:#}");
                }
            }
        }
    }
    Ok(created)
}

async fn schedule_one(
    protocol: &Protocol,
    id: &str,
    kind: SyncKind,
    last_wake_up: i64,
    now: i64,
) -> anyhow::Result<Option<Scheduled>> {
    // Read again for each kind: the previous kind's write changed its sequence number.
    let Some(Versioned {
        source: connector,
        seq_no,
        primary_term,
        ..
    }) = protocol.get(CONNECTORS_INDEX, id).await?
    else {
        return Ok(None);
    };
    if connector.get("deleted").and_then(Value::as_bool) == Some(true) {
        return Ok(None);
    }
    let status = connector.get("status").and_then(Value::as_str);
    if matches!(status, Some("created" | "needs_configuration")) {
        return Ok(None);
    }
    let Some(text) = interval(&connector, kind) else {
        return Ok(None);
    };
    if let Some(why) = not_considered(&connector, kind) {
        tracing::debug!(connector = %id, %kind, "scheduling enabled but {why}");
        return Ok(None);
    }
    let cron = Cron::parse_quartz(text)
        .map_err(|e| anyhow::anyhow!("scheduling.{}.interval: {e}", job_type(kind)))?;
    let field = scheduled_at_field(kind);
    let last = connector
        .get(field)
        .and_then(Value::as_str)
        .and_then(super::protocol::parse_iso);
    if last.is_some_and(|t| t > last_wake_up) {
        tracing::debug!(connector = %id, %kind, "another host scheduled this run");
        return Ok(None);
    }
    let Some(due) = cron.next_after(last_wake_up) else {
        return Ok(None);
    };
    if due > now {
        return Ok(None);
    }
    let written = protocol
        .update(
            CONNECTORS_INDEX,
            id,
            json!({ field: iso(due, 0) }),
            Some((seq_no, primary_term)),
        )
        .await?;
    if written != Updated::Yes {
        tracing::debug!(connector = %id, %kind, "lost the race to schedule this run");
        return Ok(None);
    }
    let job = job_document(id, &connector, kind, &super::protocol::iso_now());
    let job_id = protocol.create(JOBS_INDEX, job).await?;
    tracing::info!(connector = %id, %kind, job = %job_id, due = %iso(due, 0), "created a scheduled sync job");
    Ok(Some(Scheduled {
        connector_id: id.to_string(),
        kind,
        job_id,
        due,
    }))
}
