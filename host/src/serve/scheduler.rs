//! The scheduler: every tick, queues each scheduled sync that is due (interval or cron, per
//! connector and kind) and not already queued or running.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::Service;
use crate::clock::unix_now;
use crate::connector::schedule::Timing;
use crate::job::SyncKind;

impl Service {
    pub(super) async fn schedule_loop(self: Arc<Self>) {
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
                    if let super::dispatch::Enqueued::Full(cap) = self
                        .enqueue(&spec, kind, super::store::QueueReason::Schedule)
                        .await?
                    {
                        tracing::warn!(
                            tenant = %spec.tenant, connector = %spec.id,
                            "scheduled {kind} sync skipped: the tenant has {cap} jobs queued"
                        );
                    }
                }
            }
        }
        Ok(())
    }
}
