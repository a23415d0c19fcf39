//! The host-wide budget of index writers: how many embedded-index writers may be open at once,
//! each with its fixed indexing memory, whatever the number of tenants and indexes.
//!
//! Invariants:
//! - at most [`Writers::slots`] writers are open at once; each holds at most
//!   [`Writers::heap`] bytes of tantivy indexing memory plus its queue, so `[sink] writer_memory`
//!   bounds the indexing memory of the whole host;
//! - a writer is closed only when idle (no write inside it: its lock is free), and only after
//!   committing what it holds and waiting for its merges, so nothing handed to it is lost and the
//!   next writer of that index finds the lock free; a failed commit is kept and reported by that
//!   index's next commit, so its job fails instead of losing documents quietly;
//! - a write that finds every slot taken closes the least recently used idle writer; when every
//!   open writer is inside a write, it waits. Such a waiter holds no slot and a write inside an
//!   open writer never waits for a slot, so waiters cannot wait on each other.
//!
//! Why: tantivy sizes each writer's arena once (48 MB here) and keeps its threads until the
//! writer is dropped; one writer per index ever written made memory grow with the number of
//! indexes a host has written, not with the work it does.

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

use anyhow::anyhow;

/// Tantivy's least indexing memory for a writer thread.
pub(crate) const MIN_HEAP: usize = 15_000_000;
/// How often a write that waits for a slot looks again for a writer that became idle.
const RECHECK: Duration = Duration::from_millis(20);

/// A writer that can be asked to close.
pub(crate) trait Closable: Send + Sync {
    /// Commits and closes the open writer if no write is inside it. `None`: busy, or nothing
    /// open; `Some(result)`: closed (the result says whether its commit succeeded).
    fn close_if_idle(&self) -> Option<anyhow::Result<()>>;
}

/// The budget, shared by every index of an embedded sink.
pub(crate) struct Writers {
    slots: usize,
    heap: usize,
    /// Open writers, least recently used first.
    open: Mutex<Vec<(u64, Weak<dyn Closable>)>>,
    freed: Condvar,
}

impl Writers {
    /// Writers sharing `memory` bytes, each with `queue` bytes of queued documents besides its
    /// arena: as many 48 MB writers as fit, or one smaller writer when not even one fits.
    pub(crate) fn new(memory: u64, heap: usize, queue: usize) -> anyhow::Result<Arc<Self>> {
        let memory = usize::try_from(memory).unwrap_or(usize::MAX);
        let least = MIN_HEAP + queue;
        if memory < least {
            return Err(anyhow!(
                "[sink] writer_memory = {memory} is too small: an index writer needs at least \
                 {least} bytes ({MIN_HEAP} of indexing memory and {queue} of queue)"
            ));
        }
        Ok(Self::fixed(
            (memory / (heap + queue)).max(1),
            heap.min(memory - queue),
        ))
    }

    /// `slots` writers of `heap` bytes each.
    pub(crate) fn fixed(slots: usize, heap: usize) -> Arc<Self> {
        Arc::new(Self {
            slots: slots.max(1),
            heap: heap.max(MIN_HEAP),
            open: Mutex::new(Vec::new()),
            freed: Condvar::new(),
        })
    }

    /// Bytes of indexing memory each writer is opened with.
    pub(crate) fn heap(&self) -> usize {
        self.heap
    }

    /// How many writers may be open at once.
    #[cfg(test)]
    pub(crate) fn slots(&self) -> usize {
        self.slots
    }

    /// Writers open now.
    #[cfg(test)]
    pub(crate) fn open_now(&self) -> usize {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|(_, w)| w.strong_count() > 0);
        open.len()
    }

    /// Takes a slot for writer `id` (its owner, `owner`, is about to open it): closes idle
    /// writers while none is free, waits while every open writer is busy. The caller calls
    /// [`Writers::leave`] when the writer closes (or failed to open).
    pub(crate) fn enter(&self, id: u64, owner: Weak<dyn Closable>) {
        loop {
            let victims: Vec<Weak<dyn Closable>> = {
                let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
                open.retain(|(_, w)| w.strong_count() > 0);
                if open.len() < self.slots {
                    open.push((id, owner));
                    return;
                }
                open.iter().map(|(_, w)| w.clone()).collect()
            };
            // Least recently used first; outside the table's lock (a close commits).
            let mut closed = false;
            for victim in victims {
                let Some(victim) = victim.upgrade() else {
                    closed = true;
                    break;
                };
                match victim.close_if_idle() {
                    Some(Ok(())) => {
                        closed = true;
                        break;
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %format!("{e:#}"), "closing an idle index writer");
                        closed = true;
                        break;
                    }
                    None => {}
                }
            }
            if !closed {
                let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
                // Woken by a writer that closed; otherwise look again for one that went idle.
                drop(self.freed.wait_timeout(open, RECHECK));
            }
        }
    }

    /// Writer `id` was used: it becomes the most recently used.
    pub(crate) fn touch(&self, id: u64) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = open.iter().position(|(i, _)| *i == id) {
            let entry = open.remove(at);
            open.push(entry);
        }
    }

    /// Writer `id` closed: its slot is free.
    pub(crate) fn leave(&self, id: u64) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|(i, w)| *i != id && w.strong_count() > 0);
        self.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_budget_names_its_setting_when_too_small_and_counts_slots() {
        let e = Writers::new(10_000_000, 48 << 20, 8 << 20).err().unwrap();
        assert!(format!("{e}").contains("[sink] writer_memory"), "{e}");
        let w = Writers::new(192 << 20, 48 << 20, 8 << 20).unwrap();
        assert_eq!((w.slots(), w.heap()), (3, 48 << 20));
        let small = Writers::new(30 << 20, 48 << 20, 8 << 20).unwrap();
        assert_eq!((small.slots(), small.heap()), (1, 22 << 20));
    }
}
