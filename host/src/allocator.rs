//! Settings of the C allocator (glibc's malloc) for a long-running host that holds large
//! buffers briefly: bodies, batches, extracted text.
//!
//! Invariants:
//! - [`tune`] runs once, first thing in `main`, before any other thread exists (`mallopt` is
//!   not meant to race with allocations on other threads);
//! - an operator's own `MALLOC_ARENA_MAX` / `MALLOC_MMAP_THRESHOLD_` win: a setting already
//!   in the environment is left alone;
//! - elsewhere than Linux with glibc it does nothing.
//!
//! Why: with its defaults glibc keeps up to 8 arenas per core and raises its mmap threshold
//! as large blocks are freed, so megabyte-sized buffers end up in arenas that keep their
//! memory after the buffers are gone. Measured on the `sync_memory` bench (Dropbox mix, a
//! quarter of it) with the same two settings as environment variables, peak RSS fell from 631
//! to 438 MB. No allocator crate did better (mimalloc with its defaults was worse), and these
//! are two calls into the allocator already linked.

/// Arenas at most: fewer arenas retain less, and a host's threads are few (tokio's workers,
/// extraction threads) and mostly waiting on the network.
const ARENAS: i32 = 2;

/// Blocks from this size up are mapped on their own and returned to the system when freed
/// (fixed, so freeing large blocks never raises it).
const MMAP_THRESHOLD: i32 = 128 * 1024;

/// Applies the allocator settings (see the module docs).
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            set(libc::M_ARENA_MAX, ARENAS);
        }
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            set(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn set(param: libc::c_int, value: libc::c_int) {
    // SAFETY: `mallopt` takes two integers and only changes the allocator's parameters; it is
    // called before other threads start (see `tune`). A refusal (0) leaves the defaults.
    let accepted = unsafe { libc::mallopt(param, value) };
    if accepted == 0 {
        tracing::debug!(
            param,
            value,
            "mallopt refused a setting; glibc defaults kept"
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tuning_is_harmless_to_call() {
        super::tune();
        let v: Vec<u8> = vec![7; 1 << 20];
        assert_eq!(v.iter().map(|b| u64::from(*b)).sum::<u64>(), 7 << 20);
    }
}
