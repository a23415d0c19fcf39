//! Large text buffers handed back once their document is indexed, and reused for the next
//! body's text.
//!
//! Invariants:
//! - a buffer is handed out empty (length 0): nothing a document held is readable through the
//!   next one (safe code never reads past a `String`'s length);
//! - the pool holds at most [`POOL_BUFFERS`] buffers and [`POOL_BYTES`] of capacity in all, and
//!   only buffers of [`MIN_BYTES`] and more: a full pool drops what it is given;
//! - a buffer is only ever taken for a text that needs at least its capacity's half, so a
//!   small body never pins a large buffer;
//! - nothing waits: a caller finding the pool empty (or its lock taken) allocates as before.
//!
//! Why: a body's text of a megabyte or more is allocated with its own mapping (glibc maps
//! blocks from 128 KiB up, see the host's `allocator`), so each one cost a page fault per 4 KiB
//! written (with the page cleared and charged to the cgroup) and an `munmap` with a TLB
//! shootdown when it was dropped. On the `sync_memory` bench's Box mix (1 MB text bodies) that
//! was a quarter of the sync's CPU. A buffer reused is already mapped and resident; the pool is
//! bounded so it never holds more than one window of concurrent downloads' worth.

use std::sync::Mutex;

/// Smallest buffer kept: below this the allocator serves blocks from its heap, cheaply.
pub const MIN_BYTES: usize = 128 * 1024;
/// Most buffers kept: a window of concurrent downloads' worth (the Box plugin asks for 15).
/// With 4, the `sync_memory` Box mix still mapped a fresh buffer for about one body in seven
/// (586 `mmap`s, 116,000 page faults, 2.59-2.72 CPU s); with 16, 259 `mmap`s, 40,000 faults
/// and 2.37-2.53 CPU s, at the same peak RSS (the buffers kept are the ones a sync's peak
/// holds anyway).
pub const POOL_BUFFERS: usize = 16;
/// Most capacity kept in all: half of a job's default `max_download_bytes_in_flight`.
pub const POOL_BYTES: usize = 16 * 1024 * 1024;

static POOL: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Hands `text` back for reuse once its document no longer needs it (dropped if the pool is
/// full, too small to be worth keeping, or larger than the pool).
pub fn give_back(mut text: String) {
    let capacity = text.capacity();
    if !(MIN_BYTES..=POOL_BYTES).contains(&capacity) {
        return;
    }
    text.clear();
    let Ok(mut pool) = POOL.try_lock() else {
        return;
    };
    let held: usize = pool.iter().map(String::capacity).sum();
    if pool.len() < POOL_BUFFERS && held + capacity <= POOL_BYTES {
        pool.push(text);
    }
}

/// An empty buffer of at least `want` bytes' capacity and at most twice that, if the pool
/// holds one (the smallest that fits).
pub(crate) fn take(want: usize) -> Option<String> {
    if want < MIN_BYTES / 2 {
        return None;
    }
    let mut pool = POOL.try_lock().ok()?;
    let fits = |s: &String| (want..=want.saturating_mul(2)).contains(&s.capacity());
    let (at, _) = pool
        .iter()
        .enumerate()
        .filter(|(_, s)| fits(s))
        .min_by_key(|(_, s)| s.capacity())?;
    let text = pool.swap_remove(at);
    debug_assert!(text.is_empty());
    Some(text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    /// The pool is process-wide: tests of it run one at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn drain() {
        POOL.lock().unwrap().clear();
    }

    #[test]
    fn a_buffer_comes_back_empty_with_its_allocation() {
        let _serial = SERIAL.lock().unwrap();
        drain();
        let mut text = String::with_capacity(1 << 20);
        text.push_str("secret of one tenant");
        let at = text.as_ptr();
        give_back(text);
        let again = take(900_000).unwrap();
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), at, "the same allocation");
        assert!(again.capacity() >= 1 << 20);
        assert!(take(900_000).is_none(), "taken once");
    }

    /// Fifteen 1 MB texts at once (the Box plugin's concurrent downloads of the fixtures'
    /// files): once the first window is given back, the next is served from the pool whole.
    #[test]
    fn a_window_of_concurrent_bodies_is_reused_whole() {
        let _serial = SERIAL.lock().unwrap();
        drain();
        let window = 15;
        let first: Vec<String> = (0..window)
            .map(|_| take(1_000_000).unwrap_or_else(|| String::with_capacity(1_000_000)))
            .collect();
        let mapped: Vec<*const u8> = first.iter().map(|s| s.as_ptr()).collect();
        first.into_iter().for_each(give_back);
        let second: Vec<Option<String>> = (0..window).map(|_| take(1_000_000)).collect();
        let reused = second
            .iter()
            .flatten()
            .filter(|s| mapped.contains(&s.as_ptr()))
            .count();
        assert_eq!(reused, window, "{reused} of {window} buffers reused");
        drain();
    }

    #[test]
    fn the_pool_is_bounded_and_never_pins_a_large_buffer_for_a_small_text() {
        let _serial = SERIAL.lock().unwrap();
        drain();
        // too small to keep, too large to keep
        give_back(String::with_capacity(MIN_BYTES - 1));
        give_back(String::with_capacity(POOL_BYTES + 1));
        assert!(POOL.lock().unwrap().is_empty());
        // at most POOL_BUFFERS buffers, at most POOL_BYTES in all
        for _ in 0..POOL_BUFFERS + 2 {
            give_back(String::with_capacity(MIN_BYTES));
        }
        assert_eq!(POOL.lock().unwrap().len(), POOL_BUFFERS);
        drain();
        let fit = POOL_BYTES / (3 * 1024 * 1024);
        for _ in 0..fit + 2 {
            give_back(String::with_capacity(3 * 1024 * 1024));
        }
        let held: usize = POOL.lock().unwrap().iter().map(String::capacity).sum();
        assert!(held <= POOL_BYTES, "{held}");
        assert_eq!(POOL.lock().unwrap().len(), fit);
        // a 3 MiB buffer is not handed out for 1 MiB of text, nor for 4 MiB
        assert!(take(1 << 20).is_none());
        assert!(take(4 << 20).is_none());
        assert!(take(2 << 20).is_some());
        // nor for a text small enough for the heap
        drain();
        give_back(String::with_capacity(MIN_BYTES));
        assert!(take(MIN_BYTES / 2 - 1).is_none());
        assert!(take(MIN_BYTES / 2).is_some());
        drain();
    }
}
