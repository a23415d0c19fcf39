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
//! - a write that finds every slot taken closes the least recently used idle writer among those
//!   that may be taken: unused for [`GRACE`], or holding their slot for [`QUANTUM`] already.
//!   When none may be, it waits, at most a quantum plus the write inside. Such a waiter holds no
//!   slot and a write inside an open writer never waits for a slot, so waiters cannot wait on
//!   each other.
//!
//! Why: tantivy sizes each writer's arena once (48 MB here) and keeps its threads until the
//! writer is dropped; one writer per index ever written made memory grow with the number of
//! indexes a host has written, not with the work it does. The grace and the quantum are there
//! because a slot could be taken from a writer idle only between two batches of its job, making
//! each batch a commit of its own, with a fresh writer (its arena's hash table is sized to the
//! whole heap and walked at every commit) and the merges behind it: with 100 Box syncs on the
//! default three slots, that was more than half the CPU and about half the time of all the syncs
//! (`sync_memory -- tenants`).

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use anyhow::anyhow;

/// Tantivy's least indexing memory for a writer thread.
pub(crate) const MIN_HEAP: usize = 15_000_000;
/// How often a write that waits for a slot looks again for a writer that became idle.
const RECHECK: Duration = Duration::from_millis(20);
/// A writer unused this long may be closed for another index: its job is between files, or
/// done.
const GRACE: Duration = Duration::from_millis(50);
/// A writer holding its slot this long may be closed for another index between any two writes,
/// however busy its job keeps it: no index keeps a slot from the others.
const QUANTUM: Duration = Duration::from_millis(500);

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
    /// [`GRACE`] and [`QUANTUM`] (shorter in tests).
    grace: Duration,
    quantum: Duration,
    /// Open writers, least recently used first.
    open: Mutex<Vec<Slot>>,
    freed: Condvar,
}

/// An open writer: its index, its owner, since when it holds its slot and when it was last used.
struct Slot {
    id: u64,
    owner: Weak<dyn Closable>,
    since: Instant,
    used: Instant,
}

impl Slot {
    /// Whether another index may close this writer (if idle) to take its slot.
    fn may_be_taken(&self, grace: Duration, quantum: Duration) -> bool {
        self.used.elapsed() >= grace || self.since.elapsed() >= quantum
    }
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
        Self::timed(slots, heap, GRACE, QUANTUM)
    }

    fn timed(slots: usize, heap: usize, grace: Duration, quantum: Duration) -> Arc<Self> {
        Arc::new(Self {
            slots: slots.max(1),
            heap: heap.max(MIN_HEAP),
            grace,
            quantum,
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
        open.retain(|s| s.owner.strong_count() > 0);
        open.len()
    }

    /// Takes a slot for writer `id` (its owner, `owner`, is about to open it): closes idle
    /// writers that may be taken while no slot is free, and waits while none may. The caller
    /// calls [`Writers::leave`] when the writer closes (or failed to open).
    pub(crate) fn enter(&self, id: u64, owner: Weak<dyn Closable>) {
        loop {
            let victims: Vec<Weak<dyn Closable>> = {
                let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
                open.retain(|s| s.owner.strong_count() > 0);
                if open.len() < self.slots {
                    let now = Instant::now();
                    open.push(Slot {
                        id,
                        owner,
                        since: now,
                        used: now,
                    });
                    return;
                }
                open.iter()
                    .filter(|s| s.may_be_taken(self.grace, self.quantum))
                    .map(|s| s.owner.clone())
                    .collect()
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
                // Woken by a writer that closed; otherwise look again for one that went idle or
                // may now be taken.
                drop(self.freed.wait_timeout(open, RECHECK));
            }
        }
    }

    /// Writer `id` is being used (called as a write begins and as it ends): it becomes the most
    /// recently used.
    pub(crate) fn touch(&self, id: u64) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = open.iter().position(|s| s.id == id) {
            let mut entry = open.remove(at);
            entry.used = Instant::now();
            open.push(entry);
        }
    }

    /// Writer `id` closed: its slot is free.
    pub(crate) fn leave(&self, id: u64) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|s| s.id != id && s.owner.strong_count() > 0);
        self.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
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

    /// A writer that records when it was closed, and refuses while `busy`.
    struct Fake {
        id: u64,
        writers: Arc<Writers>,
        busy: std::sync::atomic::AtomicBool,
        closed: Mutex<Option<Instant>>,
    }

    impl Closable for Fake {
        fn close_if_idle(&self) -> Option<anyhow::Result<()>> {
            if self.busy.load(std::sync::atomic::Ordering::SeqCst) {
                return None;
            }
            *self.closed.lock().unwrap() = Some(Instant::now());
            self.writers.leave(self.id);
            Some(Ok(()))
        }
    }

    fn fake(id: u64, writers: &Arc<Writers>) -> Arc<Fake> {
        Arc::new(Fake {
            id,
            writers: writers.clone(),
            busy: false.into(),
            closed: Mutex::new(None),
        })
    }

    /// Enters `fake` on a thread of its own; the receiver hears when it holds its slot.
    fn enter_later(fake: &Arc<Fake>) -> std::sync::mpsc::Receiver<Instant> {
        let (tx, rx) = std::sync::mpsc::channel();
        let (writers, id) = (fake.writers.clone(), fake.id);
        let owner: Weak<dyn Closable> = Arc::downgrade(&(fake.clone() as Arc<dyn Closable>));
        std::thread::spawn(move || {
            writers.enter(id, owner);
            let _ = tx.send(Instant::now());
        });
        rx
    }

    #[test]
    fn a_writer_between_two_writes_keeps_its_slot_for_the_grace() {
        let grace = Duration::from_millis(200);
        let writers = Writers::timed(1, MIN_HEAP, grace, Duration::from_secs(3600));
        let (a, b) = (fake(1, &writers), fake(2, &writers));
        let a_owner: Weak<dyn Closable> = Arc::downgrade(&(a.clone() as Arc<dyn Closable>));
        writers.enter(a.id, a_owner);
        // A write of `a` ends: its job is fetching the next batch.
        writers.touch(a.id);
        let used = Instant::now();
        let entered = enter_later(&b)
            .recv_timeout(Duration::from_secs(60))
            .expect("b gets the slot once a's grace is over");
        let closed = a.closed.lock().unwrap().expect("a was closed for b");
        assert!(
            closed.duration_since(used) >= grace,
            "a was closed {:?} after its last write",
            closed.duration_since(used)
        );
        assert!(entered >= closed);
        assert_eq!(writers.open_now(), 1);
    }

    #[test]
    fn a_writer_in_constant_use_gives_its_slot_up_after_its_quantum() {
        let quantum = Duration::from_millis(300);
        let writers = Writers::timed(1, MIN_HEAP, Duration::from_secs(3600), quantum);
        let (a, b) = (fake(1, &writers), fake(2, &writers));
        let a_owner: Weak<dyn Closable> = Arc::downgrade(&(a.clone() as Arc<dyn Closable>));
        writers.enter(a.id, a_owner);
        let since = Instant::now();
        let entered = enter_later(&b);
        // `a`'s job writes again and again, idle only between two writes.
        let got = loop {
            a.busy.store(true, std::sync::atomic::Ordering::SeqCst);
            writers.touch(a.id);
            std::thread::sleep(Duration::from_millis(5));
            writers.touch(a.id);
            a.busy.store(false, std::sync::atomic::Ordering::SeqCst);
            if let Ok(at) = entered.recv_timeout(Duration::from_millis(2)) {
                break at;
            }
            assert!(
                since.elapsed() < Duration::from_secs(60),
                "b never got the slot of a writer in constant use"
            );
        };
        let closed = a.closed.lock().unwrap().expect("a was closed for b");
        assert!(closed.duration_since(since) >= quantum);
        assert!(got >= closed);
    }
}
