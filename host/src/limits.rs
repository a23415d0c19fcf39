//! Per-instance resource limits: linear memory (a [`ResourceLimiter`]) and guest CPU time (call
//! hooks measure time spent in wasm, an epoch callback enforces the budget).
//!
//! CPU is measured as wall time between entering wasm and leaving it for the host, so a plugin
//! waiting on HTTP, sleeping for `Retry-After` or blocked on index backpressure spends nothing; a
//! plugin that computes forever is stopped with a clear error.

use std::time::{Duration, Instant};

use serde::Deserialize;
use wasmtime::{CallHook, ResourceLimiter};

/// Limits applied to every plugin instance.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest linear memory one instance may grow to, in MiB.
    pub memory_mib: u64,
    /// Guest compute time per call into the plugin (a whole sync is one call), in seconds.
    pub cpu_seconds: u64,
    /// Wall-clock limit of one call into the plugin, in seconds.
    pub wall_seconds: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mib: 256,
            cpu_seconds: 600,
            wall_seconds: 6 * 3600,
        }
    }
}

impl Limits {
    /// Memory limit in bytes.
    pub fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mib.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX)
    }

    /// CPU budget.
    pub fn cpu(&self) -> Duration {
        Duration::from_secs(self.cpu_seconds)
    }

    /// Wall-clock budget.
    pub fn wall(&self) -> Duration {
        Duration::from_secs(self.wall_seconds)
    }
}

/// Why the sandbox stopped a plugin, remembered so the trap can be reported in plain words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Breach {
    /// Tried to grow memory past the limit.
    Memory {
        /// The limit in bytes.
        limit: usize,
        /// The size the plugin asked for.
        requested: usize,
    },
    /// Used more guest CPU time than allowed.
    Cpu {
        /// The budget.
        limit: Duration,
    },
}

impl std::fmt::Display for Breach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Breach::Memory { limit, requested } => write!(
                f,
                "plugin exceeded its memory limit of {} MiB (asked to grow to {} MiB)",
                limit / (1024 * 1024),
                requested / (1024 * 1024)
            ),
            Breach::Cpu { limit } => write!(
                f,
                "plugin exceeded its CPU limit of {} s of guest compute",
                limit.as_secs_f64()
            ),
        }
    }
}

/// Memory limiter for one store.
#[derive(Debug)]
pub struct MemoryLimiter {
    limit: usize,
    /// Set when the guest hit the limit.
    pub breach: Option<Breach>,
}

impl MemoryLimiter {
    /// A limiter allowing memories up to `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            breach: None,
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired <= self.limit {
            return Ok(true);
        }
        let breach = Breach::Memory {
            limit: self.limit,
            requested: desired,
        };
        let message = breach.to_string();
        self.breach = Some(breach);
        // Trapping (rather than failing the grow) stops the guest at once with our message,
        // instead of letting its allocator abort with an opaque `unreachable`.
        Err(wasmtime::Error::msg(message))
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// Measures guest compute time from call hooks.
#[derive(Debug)]
pub struct CpuMeter {
    budget: Duration,
    used: Duration,
    in_guest_since: Option<Instant>,
    /// Set when the budget ran out.
    pub breach: Option<Breach>,
}

impl CpuMeter {
    /// A meter with this budget.
    pub fn new(budget: Duration) -> Self {
        Self {
            budget,
            used: Duration::ZERO,
            in_guest_since: None,
            breach: None,
        }
    }

    /// Records a transition between host and guest.
    pub fn on_hook(&mut self, hook: CallHook) {
        let now = Instant::now();
        if hook.entering_host() {
            if let Some(since) = self.in_guest_since.take() {
                self.used += now.saturating_duration_since(since);
            }
        } else {
            self.in_guest_since = Some(now);
        }
    }

    /// Guest time used so far.
    pub fn used(&self) -> Duration {
        self.used
            + self
                .in_guest_since
                .map(|s| s.elapsed())
                .unwrap_or(Duration::ZERO)
    }

    /// Called on every epoch tick while the guest runs: `Err` once the budget is spent.
    pub fn check(&mut self) -> Result<(), Breach> {
        if self.used() <= self.budget {
            return Ok(());
        }
        let breach = Breach::Cpu { limit: self.budget };
        self.breach = Some(breach.clone());
        Err(breach)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn memory_limiter_traps_past_the_limit() {
        let mut limiter = MemoryLimiter::new(1 << 20);
        assert!(limiter.memory_growing(0, 1 << 20, None).unwrap());
        let err = limiter.memory_growing(1 << 20, 3 << 20, None).unwrap_err();
        assert!(err.to_string().contains("memory limit of 1 MiB"), "{err}");
        assert_eq!(
            limiter.breach,
            Some(Breach::Memory {
                limit: 1 << 20,
                requested: 3 << 20
            })
        );
    }

    #[test]
    fn cpu_meter_counts_guest_time_only() {
        let mut meter = CpuMeter::new(Duration::from_millis(30));
        meter.on_hook(CallHook::CallingWasm);
        std::thread::sleep(Duration::from_millis(10));
        meter.on_hook(CallHook::CallingHost);
        // Time in the host (e.g. waiting on HTTP) is free.
        std::thread::sleep(Duration::from_millis(50));
        meter.on_hook(CallHook::ReturningFromHost);
        assert!(meter.check().is_ok());
        assert!(
            meter.used() < Duration::from_millis(40),
            "{:?}",
            meter.used()
        );
        std::thread::sleep(Duration::from_millis(40));
        assert!(matches!(meter.check(), Err(Breach::Cpu { .. })));
    }
}
