//! Resource limits for one extraction, and the per-call budget that enforces them.
//!
//! [`Limits`] is the configuration (per connector); the crate-private `Budget` carries
//! the deadline derived from [`Limits::timeout`] into the synchronous parsers so that
//! loops we own stop cooperatively when the time is up.

use std::time::{Duration, Instant};

use crate::error::{ExtractError, Result};

/// One MiB.
const MIB: u64 = 1024 * 1024;

/// Limits applied to one extraction. Construct with [`Limits::default`] and override
/// fields per connector.
///
/// | field | default | enforced |
/// | --- | --- | --- |
/// | `max_input_bytes` | 10 MiB | before any parsing: a larger body is [`ExtractError::TooLarge`] |
/// | `max_output_bytes` | 4 MiB | text is cut at a char boundary and [`crate::Extracted::truncated`] is set |
/// | `timeout` | 30 s | by [`crate::Extractor`] / [`crate::extract_blocking`] (hard, returns `TimedOut`), and cooperatively inside [`crate::extract`] |
/// | `max_decompressed_bytes` | 64 MiB | total bytes inflated from a zip container or PDF streams, or read from compound-file streams |
/// | `max_archive_entries` | 10 000 | entries in a zip container (OOXML, ODF) |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest body accepted, in bytes.
    pub max_input_bytes: u64,
    /// Largest extracted text returned, in bytes of UTF-8.
    pub max_output_bytes: usize,
    /// Time allowed for one file.
    pub timeout: Duration,
    /// Zip/deflate-bomb guard: the total number of bytes that may be inflated while
    /// reading one container (all entries together) or one PDF (all streams).
    pub max_decompressed_bytes: u64,
    /// Zip-bomb guard: the largest number of entries a container may list.
    pub max_archive_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input_bytes: 10 * MIB,
            max_output_bytes: 4 * 1024 * 1024,
            timeout: Duration::from_secs(30),
            max_decompressed_bytes: 64 * MIB,
            max_archive_entries: 10_000,
        }
    }
}

impl Limits {
    /// These limits with a different maximum input size (e.g. a connector setting).
    pub fn with_max_input_bytes(mut self, bytes: u64) -> Self {
        self.max_input_bytes = bytes;
        self
    }

    /// These limits with a different time limit.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// These limits with a different output cap.
    pub fn with_max_output_bytes(mut self, bytes: usize) -> Self {
        self.max_output_bytes = bytes;
        self
    }
}

/// Human-readable byte count for error messages ("64 MiB", "512 KiB", "17 bytes").
pub(crate) fn human_bytes(n: u64) -> String {
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

/// The per-call view of the limits: a deadline plus the inflation allowance left.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    deadline: Option<Instant>,
    timeout: Duration,
    inflate_left: u64,
    inflate_limit: u64,
    max_entries: usize,
}

impl Budget {
    pub(crate) fn new(limits: &Limits) -> Self {
        Budget {
            deadline: Instant::now().checked_add(limits.timeout),
            timeout: limits.timeout,
            inflate_left: limits.max_decompressed_bytes,
            inflate_limit: limits.max_decompressed_bytes,
            max_entries: limits.max_archive_entries,
        }
    }

    /// `Err(TimedOut)` once the deadline has passed.
    pub(crate) fn check_time(&self) -> Result<()> {
        match self.deadline {
            Some(d) if Instant::now() >= d => Err(ExtractError::TimedOut(self.timeout)),
            _ => Ok(()),
        }
    }

    /// Inflated bytes still allowed.
    pub(crate) fn inflate_left(&self) -> u64 {
        self.inflate_left
    }

    /// The configured total inflation limit.
    pub(crate) fn inflate_limit(&self) -> u64 {
        self.inflate_limit
    }

    /// Record `n` inflated bytes; `false` when that goes past the limit.
    pub(crate) fn take_inflated(&mut self, n: u64) -> bool {
        match self.inflate_left.checked_sub(n) {
            Some(left) => {
                self.inflate_left = left;
                true
            }
            None => {
                self.inflate_left = 0;
                false
            }
        }
    }

    pub(crate) fn max_entries(&self) -> usize {
        self.max_entries
    }
}
