//! The scheduler: queues each scheduled sync (interval or cron, per connector and kind) when it
//! is due and not already queued or running.
//!
//! Invariants: the connectors table is read (and every schedule parsed) only when it changed —
//! at start and after a write the store signals — never on every tick, so a tenant with huge
//! connector records cannot make the scheduler (and the database lock it shares with every
//! request) slow for everybody. Between changes the plan lives in memory: each entry's last
//! queueing time, from which its next due time follows; the loop sleeps until the earliest due
//! time (at least one tick, at most a minute), or until the connectors change.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Service;
use crate::clock::unix_now;
use crate::connector::schedule::Timing;
use crate::job::SyncKind;

/// One scheduled kind of one connector.
struct Planned {
    tenant: String,
    connector: String,
    kind: SyncKind,
    timing: Timing,
    /// When it was last queued (or, for a cron schedule, first seen), Unix seconds.
    last: Option<i64>,
}

impl Planned {
    /// When it is next due, Unix seconds; `None` if never again.
    fn next_due(&self) -> Option<i64> {
        match (&self.timing, self.last) {
            (Timing::Every(_), None) => Some(i64::MIN),
            (Timing::Every(every), Some(t)) => {
                Some(t.saturating_add(i64::try_from(every.as_secs()).unwrap_or(i64::MAX)))
            }
            (Timing::Cron(_), None) => None,
            (Timing::Cron(cron), Some(t)) => cron.next_after(t),
        }
    }
}

/// Longest sleep between looks at the plan (a clock step is noticed within it).
const MAX_SLEEP: Duration = Duration::from_secs(60);

impl Service {
    pub(super) async fn schedule_loop(self: Arc<Self>) {
        let mut stop = self.shutdown.subscribe();
        let tick = Duration::from_millis(self.config.tick_ms.max(10));
        let mut plan: Vec<Planned> = Vec::new();
        // Forces the first read.
        let mut seen_generation = None;
        loop {
            let generation = self.store.connectors_generation();
            if seen_generation != Some(generation) {
                match self.load_plan().await {
                    Ok(fresh) => {
                        plan = fresh;
                        seen_generation = Some(generation);
                    }
                    Err(err) => {
                        tracing::error!("reading the connectors' schedules failed: {err:#}")
                    }
                }
            }
            let sleep = match self.schedule(&mut plan).await {
                Ok(next) => next
                    .map(|at| Duration::from_secs(at.saturating_sub(unix_now()).max(0) as u64))
                    .unwrap_or(MAX_SLEEP)
                    .clamp(tick, MAX_SLEEP),
                Err(err) => {
                    tracing::error!("scheduling syncs failed: {err:#}");
                    tick
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.store.connectors_changed() => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// How many times the scheduler has read the connectors table (tests show it does not on
    /// every tick).
    pub fn schedule_loads(&self) -> u64 {
        self.schedule_loads.load(Ordering::Relaxed)
    }

    /// Reads every connector's schedule and the marks of when each was last queued; a cron
    /// schedule seen for the first time is marked now (it waits for its next time).
    async fn load_plan(&self) -> anyhow::Result<Vec<Planned>> {
        self.schedule_loads.fetch_add(1, Ordering::Relaxed);
        let now = unix_now();
        let marks = self.store.schedule_marks().await?;
        let mut plan = Vec::new();
        for spec in self.store.all_connectors().await? {
            for kind in [
                SyncKind::Full,
                SyncKind::Incremental,
                SyncKind::AccessControl,
            ] {
                // Schedules are checked on write; an unreadable one schedules nothing.
                let Ok(Some(timing)) = spec.schedule.timing(kind) else {
                    continue;
                };
                let key = (spec.tenant.clone(), spec.id.clone(), kind.to_string());
                let mut last = marks.get(&key).copied();
                if last.is_none() && matches!(timing, Timing::Cron(_)) {
                    self.store
                        .mark_scheduled(&spec.tenant, &spec.id, kind, now)
                        .await?;
                    last = Some(now);
                }
                plan.push(Planned {
                    tenant: spec.tenant.clone(),
                    connector: spec.id.clone(),
                    kind,
                    timing,
                    last,
                });
            }
        }
        Ok(plan)
    }

    /// Queues every planned sync that is due and not already queued or running; returns the
    /// earliest time something is due next.
    async fn schedule(&self, plan: &mut [Planned]) -> anyhow::Result<Option<i64>> {
        let now = unix_now();
        let due: Vec<usize> = (0..plan.len())
            .filter(|&i| plan[i].next_due().is_some_and(|at| at <= now))
            .collect();
        if !due.is_empty() {
            let pending: HashSet<(String, String, SyncKind)> = self
                .store
                .queue()
                .await?
                .into_iter()
                .map(|q| (q.tenant, q.connector, q.kind))
                .collect();
            for i in due {
                let entry = &mut plan[i];
                let key = (entry.tenant.clone(), entry.connector.clone(), entry.kind);
                if pending.contains(&key) {
                    continue;
                }
                self.store
                    .mark_scheduled(&entry.tenant, &entry.connector, entry.kind, now)
                    .await?;
                entry.last = Some(now);
                // The record is re-read only for a due entry (the job needs the whole spec).
                let Some(spec) = self
                    .store
                    .connector(&entry.tenant, &entry.connector)
                    .await?
                else {
                    continue;
                };
                if let super::dispatch::Enqueued::Full(cap) = self
                    .enqueue(&spec, entry.kind, super::store::QueueReason::Schedule)
                    .await?
                {
                    tracing::warn!(
                        tenant = %spec.tenant, connector = %spec.id,
                        "scheduled {} sync skipped: the tenant has {cap} jobs queued", entry.kind
                    );
                }
            }
        }
        Ok(plan.iter().filter_map(Planned::next_due).min())
    }
}
